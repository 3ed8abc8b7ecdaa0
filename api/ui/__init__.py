"""The dashboard: server-rendered pages for people (``pages``) and their templates."""
