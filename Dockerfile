# The support dashboard: the app and its runtime dependencies only (no demo, tests or bench).
# Configuration by environment only (docs/deploy.md); OIDC settings in a mounted
# /app/.streamlit/secrets.toml, the role mapping in the file DASHBOARD_USERS_FILE names.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    STREAMLIT_SERVER_PORT=8501 \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

WORKDIR /app

# The dependencies come from pyproject.toml's one list (the project itself is not installed:
# its package list includes the demo generator).
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install --no-compile -r /tmp/requirements.txt \
    && rm /tmp/pyproject.toml /tmp/requirements.txt \
    && useradd --uid 10001 --no-create-home --home-dir /app --shell /usr/sbin/nologin dashboard

COPY app.py dashboard.toml ./
COPY .streamlit/config.toml .streamlit/config.toml
COPY services services
COPY ui ui
COPY views views

USER 10001
EXPOSE 8501
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=2)"]
CMD ["python", "-m", "streamlit", "run", "app.py"]
