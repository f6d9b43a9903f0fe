"""The ways in: the HTTP service and the `bounceledger` command line."""
