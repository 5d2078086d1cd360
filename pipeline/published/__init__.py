"""Real published datasets converted into the delivery format the pipeline ingests.

They test the pipeline on data the generator never made, against published survival analyses
(``docs/published_data.md``). Command line: ``python -m pipeline.published rossi --landing DIR``.
"""
