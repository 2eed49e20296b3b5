package com.example.demo;

public class DemoApplication {
    public static void main(String[] args) {
        int libs = Integer.parseInt(System.getProperty("demo.libs", "0"));
        System.out.println("demo application started by JarLauncher with " + libs
            + " library (greeting-lib: " + com.example.lib.Greeting.hello() + ")");
    }
}
