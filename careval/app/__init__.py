"""The care-coordination app: case lists, shared care plans and MDG case review (an edge).

``careval serve`` runs it (:func:`careval.app.server.create_app`); what clinicians record in it is
exported to the data model's tables by ``careval export`` (:mod:`careval.app.export`).
"""
