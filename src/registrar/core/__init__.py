"""The base layer: settings, the process runtime, the clock and date formats, echoed text, and the
errors a request can end in."""
