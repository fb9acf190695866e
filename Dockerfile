# scenesearch app image. TORCH_CPU=1 (default) pins the CPU torch wheel; 0 installs CUDA torch.
FROM python:3.11-slim
ARG TORCH_CPU=1
ENV PYTHONUNBUFFERED=1 GRADIO_ANALYTICS_ENABLED=False
WORKDIR /app
COPY pyproject.toml README.md ./
COPY constraints ./constraints
COPY scenesearch ./scenesearch
COPY indexer ./indexer
COPY search ./search
COPY ui ./ui
COPY eval ./eval
RUN if [ "$TORCH_CPU" = "1" ]; then \
        pip install --no-cache-dir -c constraints/cpu.txt \
            --extra-index-url https://download.pytorch.org/whl/cpu . ; \
    else pip install --no-cache-dir . ; fi
EXPOSE 7860
CMD ["scenesearch", "serve", "--host", "0.0.0.0"]
