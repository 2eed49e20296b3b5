package com.example;

/** Prints a greeting and the feature version of the running Java. */
public class Hello {
    public static void main(String[] args) {
        System.out.println("hello from java");
        System.out.println("java " + Runtime.version().feature());
    }
}
