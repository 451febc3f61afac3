"""Outbound networking shared by sources, destinations and callbacks.

    ssrf    ``check_url``: the SSRF guard every outbound URL passes (source, callback, destination, redirect)
    http    the pinned httpx client: connects to the IP the guard vetted, never resolves the name again
"""
