# spring-layered.Dockerfile for buildah 1.28, whose WORKDIR makes the directory as root whatever
# USER says (BuildKit and ocibuild make it as the user in force: nonroot in the JRE base): the
# directory is made by a COPY --chown of an empty directory first.
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
RUN java -Djarmode=layertools -jar application.jar extract && mkdir /empty

FROM ${JRE}
COPY --from=builder --chown=65532:65532 /empty/ /home/nonroot/application/
WORKDIR application
COPY --from=builder application/dependencies/ ./
COPY --from=builder application/spring-boot-loader/ ./
COPY --from=builder application/snapshot-dependencies/ ./
COPY --from=builder application/application/ ./
ENTRYPOINT ["java", "org.springframework.boot.loader.launch.JarLauncher"]
