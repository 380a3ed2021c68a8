# Flux Lab: the Streamlit app on port 8501, data in the /data volume, running as a non-root user.
# With no SEGMIND_API_KEY the app serves the embedded emulator (preview images, not FLUX). It serves
# on every interface, so it starts only with sign-in configured ([auth] in a mounted
# .streamlit/secrets.toml) or with the explicit opt-in FLUX_LAB_OPEN_NETWORK=1 (README, "Running for a team"):
#   docker run -p 8501:8501 -v flux-lab:/data -e FLUX_LAB_OPEN_NETWORK=1 -e SEGMIND_API_KEY=SG_... flux-lab
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FLUX_LAB_DATA=/data

RUN useradd --create-home --uid 10001 flux && mkdir -p /data && chown flux:flux /data

WORKDIR /app
# The dependencies first, at exactly the versions (and hashes) uv.lock names; uv itself stays out
# of the image, and this layer is rebuilt only when the lock or pyproject.toml changes. --no-deps: the
# export is the whole closure, and pip must not put back what [tool.uv] overrides (opencv-python).
COPY pyproject.toml uv.lock README.md ./
RUN pip install uv==0.13.9 \
    && uv export --frozen --no-dev --no-emit-project --quiet --output-file requirements.txt \
    && pip uninstall --yes uv \
    && pip install --no-cache-dir --no-deps --requirement requirements.txt
COPY flux_core ./flux_core
COPY flux_ui ./flux_ui
COPY app.py ./
COPY pages ./pages
COPY .streamlit/config.toml ./.streamlit/config.toml
# `streamlit run app.py` imports flux_core and flux_ui from /app (the script's folder comes first on
# sys.path), not from the installed copy, and PYTHONDONTWRITEBYTECODE keeps Python from caching their
# bytecode: compiled here once, or every start compiles them again (0.5 s of CPU).
RUN pip install --no-cache-dir --no-deps . \
    && python -m compileall -q flux_core flux_ui

USER flux
VOLUME ["/data"]
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read() == b'ok' else 1)"
CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501", "--server.headless=true"]
