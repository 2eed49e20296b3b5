package org.springframework.boot.loader.launch;

import java.io.File;
import java.io.InputStream;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.List;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;

/**
 * A stand-in for Spring Boot's launcher: `-Djarmode=layertools -jar app.jar extract` writes the
 * jar's entries into the layer directories (dependencies, spring-boot-loader,
 * snapshot-dependencies, application); run from an exploded jar, it starts the application
 * with BOOT-INF/classes and BOOT-INF/lib on the class path.
 */
public class JarLauncher {
    public static void main(String[] args) throws Exception {
        if ("layertools".equals(System.getProperty("jarmode"))) {
            if (args.length == 0 || !"extract".equals(args[0])) {
                System.err.println("Usage: java -Djarmode=layertools -jar app.jar extract");
                System.exit(1);
            }
            extract();
            return;
        }
        Path root = Paths.get("").toAbsolutePath();
        List<URL> urls = new ArrayList<>();
        urls.add(root.resolve("BOOT-INF/classes/").toUri().toURL());
        File[] libs = root.resolve("BOOT-INF/lib").toFile().listFiles();
        int n = 0;
        if (libs != null) {
            for (File f : libs) {
                urls.add(f.toURI().toURL());
                n++;
            }
        }
        System.setProperty("demo.libs", Integer.toString(n));
        String start = "com.example.demo.DemoApplication";
        try (URLClassLoader cl = new URLClassLoader(urls.toArray(new URL[0]))) {
            cl.loadClass(start).getMethod("main", String[].class).invoke(null, (Object) args);
        }
    }

    private static void extract() throws Exception {
        String jar = JarLauncher.class.getProtectionDomain().getCodeSource().getLocation().getPath();
        for (String layer : new String[] {"dependencies", "spring-boot-loader", "snapshot-dependencies", "application"}) {
            Files.createDirectories(Paths.get(layer));
        }
        try (JarFile jf = new JarFile(jar)) {
            Enumeration<JarEntry> entries = jf.entries();
            while (entries.hasMoreElements()) {
                JarEntry e = entries.nextElement();
                String name = e.getName();
                String layer;
                if (name.startsWith("BOOT-INF/lib/")) {
                    layer = name.contains("SNAPSHOT") ? "snapshot-dependencies" : "dependencies";
                } else if (name.startsWith("org/springframework/boot/loader/")) {
                    layer = "spring-boot-loader";
                } else {
                    layer = "application";
                }
                Path out = Paths.get(layer, name);
                if (e.isDirectory()) {
                    Files.createDirectories(out);
                    continue;
                }
                Files.createDirectories(out.getParent());
                try (InputStream in = jf.getInputStream(e)) {
                    Files.copy(in, out, StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
    }
}
