# syntax=docker/dockerfile:1
# The shape of Spring Boot's layered-jar Dockerfile: the fat jar found by a glob in a build arg,
# exploded with `java -Djarmode=layertools -jar application.jar extract` into one directory per
# layer, each layer copied on its own (least to most often changed), the launcher as the
# entrypoint, a relative WORKDIR. There is no Maven Central here: the first stage makes the jar
# with javac and jar (`--date` for reproducible entries; the launcher is a small stand-in with
# the same layout and the same jarmode). JDK is `ocibuild base build --profile java-build`, JRE
# `--profile java:nonroot`.
# expect: demo application started by JarLauncher with 1 library (greeting-lib: hello)
ARG JDK
ARG JRE

FROM ${JDK} AS package
WORKDIR /build
COPY src/ src/
COPY lib/ lib/
RUN set -eu; \
    mkdir -p classes/boot classes/app classes/lib target/jar/BOOT-INF/lib target/jar/META-INF; \
    javac -d classes/lib lib/Greeting.java; \
    jar --create --date=2000-01-01T00:00:02Z --file target/jar/BOOT-INF/lib/greeting-lib-1.0.jar -C classes/lib .; \
    javac -d classes/boot src/org/springframework/boot/loader/launch/JarLauncher.java; \
    javac -cp classes/lib -d target/jar/BOOT-INF/classes src/com/example/demo/DemoApplication.java; \
    cp -r classes/boot/. target/jar/; \
    printf 'Main-Class: org.springframework.boot.loader.launch.JarLauncher\nStart-Class: com.example.demo.DemoApplication\n' > manifest.txt; \
    jar --create --date=2000-01-01T00:00:02Z --file target/demo-0.0.1-SNAPSHOT.jar --manifest manifest.txt -C target/jar .

FROM ${JDK} AS builder
WORKDIR application
ARG JAR_FILE=target/*.jar
COPY --from=package /build/${JAR_FILE} application.jar
RUN java -Djarmode=layertools -jar application.jar extract

FROM ${JRE}
WORKDIR application
COPY --from=builder application/dependencies/ ./
COPY --from=builder application/spring-boot-loader/ ./
COPY --from=builder application/snapshot-dependencies/ ./
COPY --from=builder application/application/ ./
ENTRYPOINT ["java", "org.springframework.boot.loader.launch.JarLauncher"]
