# Production image: slim, non-root, with a health check against /healthz.
# ECharts for the dashboard comes from the npm registry and is served by the app itself.
FROM node:20-slim AS assets
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml ./
COPY server ./server
COPY question_bank ./question_bank
COPY scoring ./scoring
COPY content ./content
COPY --from=assets /src/node_modules/echarts/dist/echarts.min.js ./server/static/dashboard/vendor/echarts.min.js
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 APP_ENV=production HOST=0.0.0.0 PORT=8080
# Noto CJK: embedded in the paper answer forms' PDF (scoring/assisted/paper.py).
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends fonts-noto-cjk \
  && rm -rf /var/lib/apt/lists/* \
  && useradd --system --uid 10001 --home-dir /app app
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER app
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os,urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\",\"8080\")}/healthz', timeout=2)" || exit 1
# A master and one worker process per CPU this container may use: its CPU affinity, capped by a
# cgroup v2 CPU quota (`--cpus`, a Kubernetes limit); os.cpu_count() would see the host's.
# Under a cgroup v1 quota, or to choose, set WEB_CONCURRENCY=N (or append `--workers N`).
# SIGTERM (docker stop) drains in-flight requests for up to 30 s: give `docker stop -t 45`.
CMD ["python", "-m", "server", "serve"]
