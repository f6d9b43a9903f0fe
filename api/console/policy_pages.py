"""Placeholder: filled in below."""

from litestar.handlers import HTTPRouteHandler

HANDLERS: list[HTTPRouteHandler] = []
