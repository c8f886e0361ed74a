# One image for every promshard mode (webhook, coordinator, sidecar, local, certs, targets).
# Build: docker build -t promshard .   Run: docker run --rm promshard --help
FROM node:24-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev

FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# The node image's unprivileged user; Kubernetes runAsNonRoot checks the numeric id.
USER 1000:1000
ENTRYPOINT ["node", "/app/dist/cli.js"]
