# The segstream worker image. `docker compose up` runs it next to a Kafka broker.
# It installs exactly uv.lock, as `make venv` and CI do (tests/test_install.py checks
# that this file and the Makefile agree on the lock and on uv's version).
FROM python:3.11-slim
ENV UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/segstream
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
# the dependencies first, in their own layer: they change less often than the code
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-install-project --no-cache
COPY segments ./segments
COPY streams ./streams
COPY schemas ./schemas
RUN uv sync --frozen --no-editable --no-cache && useradd --create-home segstream \
    && mkdir /data && chown segstream /data  # a new volume there takes this owner
ENV PATH=/opt/segstream/bin:$PATH
USER segstream
WORKDIR /home/segstream
ENTRYPOINT ["segstream"]
CMD ["worker"]
