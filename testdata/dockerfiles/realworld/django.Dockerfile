# syntax=docker/dockerfile:1
# The shape of a Django deployment image: no .pyc files and unbuffered output, requirements
# installed with pip (cache mount, --no-cache-dir), the project copied, static files collected,
# an unprivileged user, gunicorn-style CMD. PYTHON is `ocibuild base build --profile
# python-build`. There is no index here: requirements.txt names a wheel in the context
# (`--no-index --find-links`), the way an air-gapped build vendors its dependencies.
# expect: collected 2 static files into /app/staticfiles; hello-wheel 1.0 says hi; user django
ARG PYTHON
FROM ${PYTHON}

# Prevents Python from writing pyc files to disc
ENV PYTHONDONTWRITEBYTECODE=1 \
    # Prevents Python from buffering stdout and stderr
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1

WORKDIR /app

# Install dependencies first, for the layer cache
COPY requirements.txt .
COPY wheels/ wheels/
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-cache-dir --no-compile --no-index --find-links=/app/wheels -r requirements.txt

# Copy project
COPY . .

# Collect static files
RUN python3 manage.py collectstatic --noinput --clear

# Create a non-root user (the base has no useradd: the files, as useradd would write them)
RUN echo 'django:x:999:' >> /etc/group && \
    echo 'django:x:999:999::/app:/usr/sbin/nologin' >> /etc/passwd && \
    chown -R django:django /app/staticfiles
USER django

EXPOSE 8000
CMD ["python3", "manage.py", "check-deploy"]
