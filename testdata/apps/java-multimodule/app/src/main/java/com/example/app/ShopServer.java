package com.example.app;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Properties;

import com.example.api.Catalog;
import com.example.core.FixedCatalog;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

/** GET /quote?item=NAME&qty=N answers with a price from shop-core's catalog. */
public final class ShopServer {
    private ShopServer() {}

    public static void main(String[] args) throws IOException {
        Properties props = new Properties();
        try (InputStream in = ShopServer.class.getResourceAsStream("/shop.properties")) {
            if (in == null) {
                throw new IOException("shop.properties is not on the classpath");
            }
            props.load(in);
        }
        String name = props.getProperty("shop.name");
        Catalog catalog = new FixedCatalog(Map.of("apple", 45L, "pear", 60L));
        int port = Integer.parseInt(System.getenv().getOrDefault("PORT", "8080"));
        HttpServer server = HttpServer.create(new InetSocketAddress(port), 0);
        server.createContext("/quote", exchange -> {
            Map<String, String> q = query(exchange);
            int qty = Integer.parseInt(q.getOrDefault("qty", "1"));
            String body = catalog.quote(q.getOrDefault("item", ""), qty)
                    .map(quote -> name + ": " + quote.render())
                    .orElse(name + ": no such item");
            reply(exchange, body + "\n");
        });
        server.start();
        System.out.println(name + " listening on " + port);
    }

    private static Map<String, String> query(HttpExchange exchange) {
        String raw = exchange.getRequestURI().getRawQuery();
        Map<String, String> out = new java.util.HashMap<>();
        if (raw != null) {
            for (String pair : raw.split("&")) {
                String[] kv = pair.split("=", 2);
                out.put(kv[0], kv.length > 1 ? kv[1] : "");
            }
        }
        return out;
    }

    private static void reply(HttpExchange exchange, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", "text/plain; charset=utf-8");
        exchange.sendResponseHeaders(200, bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }
}
