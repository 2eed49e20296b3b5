package com.example;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Properties;

/**
 * The Java template's app: an HTTP server from the JDK alone (com.sun.net.httpserver). GET /
 * greets with a line read from app.properties on the classpath; GET /healthz answers ok.
 */
public class App {
    public static void main(String[] args) throws IOException {
        Properties p = new Properties();
        try (InputStream in = App.class.getResourceAsStream("/app.properties")) {
            if (in == null) {
                throw new IOException("app.properties is not on the classpath");
            }
            p.load(in);
        }
        String greeting = p.getProperty("greeting") + " as " + System.getProperty("user.name")
                + " on java " + Runtime.version().feature() + "\n";
        int port = Integer.parseInt(System.getenv().getOrDefault("PORT", "8080"));
        HttpServer server = HttpServer.create(new InetSocketAddress(port), 0);
        server.createContext("/", ex -> reply(ex, greeting));
        server.createContext("/healthz", ex -> reply(ex, "ok\n"));
        server.start();
        System.out.println("listening on " + port);
    }

    private static void reply(HttpExchange ex, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "text/plain; charset=utf-8");
        ex.sendResponseHeaders(200, bytes.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(bytes);
        }
    }
}
