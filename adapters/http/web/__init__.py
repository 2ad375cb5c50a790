"""The applicants' tracker web pages, served beside the JSON API (adapters.http.app)."""
