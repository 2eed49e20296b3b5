# syntax=docker/dockerfile:1
# The shape of Next.js's `output: "standalone"` example: deps, builder and runner stages, a
# system user and group made with addgroup/adduser (Debian's: the user's primary group is
# nogroup), the standalone server and its static files copied with --chown. NODE is
# `ocibuild base build --profile node-build --packages adduser,perl-base` (adduser is Perl).
# The "next build" here is a small script with the same outputs (.next/standalone, .next/static).
# expect: hello, nextjs: next-like server on 0.0.0.0:3000 as nextjs (1001:65534) NODE_ENV=production telemetry=1
ARG NODE

FROM ${NODE} AS base

# Install dependencies only when needed
FROM base AS deps
WORKDIR /app

# Install dependencies based on the preferred package manager
COPY package.json package-lock.json* ./
# (the dependencies are vendored as tarballs: there is no registry in the tests)
COPY vendor ./vendor
RUN --mount=type=cache,target=/root/.npm \
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --offline; \
  else echo "Lockfile not found." && exit 1; \
  fi

# Rebuild the source code only when needed
FROM base AS builder
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .

# Next.js collects completely anonymous telemetry data about general usage.
# Uncomment the following line in case you want to disable telemetry during the build.
ENV NEXT_TELEMETRY_DISABLED=1

RUN npm run build

# Production image, copy all the files and run next
FROM base AS runner
WORKDIR /app

ENV NODE_ENV=production
# Uncomment the following line in case you want to disable telemetry during runtime.
ENV NEXT_TELEMETRY_DISABLED=1

RUN addgroup --system --gid 1001 nodejs
RUN adduser --system --uid 1001 nextjs

COPY --from=builder /app/public ./public

# Set the correct permission for prerender cache
RUN mkdir .next
RUN chown nextjs:nodejs .next

# Automatically leverage output traces to reduce image size
COPY --from=builder --chown=nextjs:nodejs /app/.next/standalone ./
COPY --from=builder --chown=nextjs:nodejs /app/.next/static ./.next/static

USER nextjs

EXPOSE 3000

ENV PORT=3000

# server.js is created by next build from the standalone output
ENV HOSTNAME="0.0.0.0"
CMD ["node", "server.js"]
