package com.example.lib;

public final class Greeting {
    private Greeting() {}

    public static String hello() {
        return "hello";
    }
}
