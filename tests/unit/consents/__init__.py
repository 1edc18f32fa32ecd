"""Tests of backend/consents."""
