"""Tests of the notification bridge (lingtan_notify) against real local HTTP and SMTP servers."""
