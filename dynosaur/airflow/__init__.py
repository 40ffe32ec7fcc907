"""The Airflow adapter: the only code of the package that knows Airflow.

- :mod:`.dags`: what the DAG files share (the asset, default arguments, trigger forms); light
  enough to import at parse time.
- :mod:`.tasks` and :mod:`.consumers`: the bodies of the growth DAG's tasks and of the export
  and selection DAGs' tasks, thin over :mod:`dynosaur.pipeline` and the step packages.
- :mod:`.connections`: the Airflow connections mapped onto the settings.
- :mod:`.setup`: an Airflow home for our DAGs (configuration, metadata database, pool).
- :mod:`.standalone` and :mod:`.demo`: ``dynosaur airflow standalone`` and ``dynosaur demo``.

Nothing here imports Airflow at module level except :mod:`.dags` (the DAG files' import):
Airflow reads its configuration at first import, so the demo and the standalone command set it
up before anything imports ``airflow``.
"""

# The Airflow pool that caps LLM calls across runs (created by setup, used by the growth DAG).
LLM_POOL = "llm"
