"""The accuracy report: one self-contained HTML page, a Markdown summary and PNG figures.

:mod:`oath.report.page` writes the page (:func:`~oath.report.page.write_report`);
:mod:`oath.report.inputs` gathers a rule's input files into its arguments. The sections:
:mod:`~oath.report.label_sets` (per label set), :mod:`~oath.report.protocols` (the protocol
comparison), :mod:`~oath.report.published_features` (our features against the published ones),
:mod:`~oath.report.provenance` (which weights, which settings). Every table goes through
:class:`oath.report.tables.Table`, so HTML and Markdown show the same rows.

:mod:`oath.report.classify` is the classify run's page, a subpackage of its own.
"""
