# The Airflow image with Dynosaur installed: the official image plus our package and DAGs.
#   docker build -t dynosaur-airflow .                         (airflow extra only)
#   docker build --build-arg EXTRAS=airflow,select -t dynosaur-airflow .   (+ selection: torch)
FROM apache/airflow:3.3.2-python3.11

ARG EXTRAS=airflow

# Same install as the README's: the package with its extras, pinned by constraints.txt.
COPY --chown=airflow:root pyproject.toml README.md constraints.txt /opt/dynosaur/
COPY --chown=airflow:root dynosaur /opt/dynosaur/dynosaur
COPY --chown=airflow:root sql /opt/dynosaur/sql
COPY --chown=airflow:root dags /opt/dynosaur/dags
RUN pip install --no-cache-dir -c /opt/dynosaur/constraints.txt "/opt/dynosaur[${EXTRAS}]"

# The DAGs where the official image's scheduler and dag-processor look for them.
COPY --chown=airflow:root dags /opt/airflow/dags
