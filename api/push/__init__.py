"""Outbound webhooks: the change feed pushed to the endpoints an operator registers,
signed as Standard Webhooks prescribes (standardwebhooks.com), each endpoint at its own
cursor, retried on Svix's schedule."""
