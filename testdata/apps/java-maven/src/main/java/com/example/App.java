package com.example;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

import org.apache.commons.lang3.StringUtils;

/** Prints a greeting read from app.properties on the classpath, and a line made by commons-lang3. */
public class App {
    public static void main(String[] args) throws IOException {
        Properties p = new Properties();
        try (InputStream in = App.class.getResourceAsStream("/app.properties")) {
            if (in == null) {
                throw new IOException("app.properties is not on the classpath");
            }
            p.load(in);
        }
        System.out.println(p.getProperty("greeting"));
        System.out.println(StringUtils.capitalize("commons-lang3") + " says " + StringUtils.reverse("enilffo"));
        System.out.println("java " + Runtime.version().feature());
    }
}
