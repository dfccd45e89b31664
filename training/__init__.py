"""Offline training code for the DTM generators (never imported by the plugin)."""
