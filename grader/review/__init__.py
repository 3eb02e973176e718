"""Reviewing written answers in the browser: ``serve_review`` starts the local app."""

from .server import ReviewServer, find_concepts, group_answers, serve_review, suggest

__all__ = ["ReviewServer", "find_concepts", "group_answers", "serve_review", "suggest"]
