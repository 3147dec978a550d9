"""What runs inside Ray: the runner, built-in models and data sets, the training loop, tune glue.

Never imports `dljobs.controller`: these modules run on Ray nodes that have no database.
"""
