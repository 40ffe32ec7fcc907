# The Airflow image with Dynosaur installed: the official image plus our package and DAGs.
#   docker build -t dynosaur-airflow .                          (Airflow + selection, CPU torch)
#   docker build --build-arg EXTRAS=airflow -t dynosaur-airflow .   (no selection: smaller image;
#                                              then pause or delete the dynosaur_select DAG)
FROM apache/airflow:3.3.2-python3.11

ARG EXTRAS=airflow,select
# CPU builds of torch (the selection extra); a GPU image would use another index.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

# Same install as the README's: the package with its extras, pinned by constraints.txt.
COPY --chown=airflow:root pyproject.toml README.md constraints.txt /opt/dynosaur/
COPY --chown=airflow:root dynosaur /opt/dynosaur/dynosaur
COPY --chown=airflow:root sql /opt/dynosaur/sql
COPY --chown=airflow:root dags /opt/dynosaur/dags
RUN pip install --no-cache-dir --extra-index-url "${TORCH_INDEX}" \
        -c /opt/dynosaur/constraints.txt "/opt/dynosaur[${EXTRAS}]"

# The DAGs where the official image's scheduler and dag-processor look for them.
COPY --chown=airflow:root dags /opt/airflow/dags
