package com.example;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/** Prints a greeting read from app.properties on the classpath. */
public class App {
    public static void main(String[] args) throws IOException {
        Properties p = new Properties();
        try (InputStream in = App.class.getResourceAsStream("/app.properties")) {
            if (in != null) {
                p.load(in);
            }
        }
        System.out.println(p.getProperty("greeting", "hello from java"));
        System.out.println("java " + Runtime.version().feature());
    }
}
