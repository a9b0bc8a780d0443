# Python base for the app image: Debian 12's python3 (3.11) with venv and pip.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ENV LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
CMD ["python3"]
