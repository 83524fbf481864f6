"""Tests of the notification bridge (lingtan.notify) against real local HTTP and SMTP servers."""
