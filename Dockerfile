FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SIMULATOR_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY simulator_project ./simulator_project
COPY generators_app ./generators_app
COPY limits_app ./limits_app
COPY recordings_app ./recordings_app
COPY manage.py ./
RUN pip install --no-cache-dir . && useradd --create-home simulator && mkdir -p /data && chown simulator /data
USER simulator
EXPOSE 8000
CMD ["python", "manage.py", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
