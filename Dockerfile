# The segstream worker image. `docker compose up` runs it next to a Kafka broker.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY segments ./segments
COPY streams ./streams
COPY schemas ./schemas
RUN pip install --no-cache-dir . && useradd --create-home segstream
USER segstream
WORKDIR /home/segstream
ENTRYPOINT ["segstream"]
CMD ["worker"]
