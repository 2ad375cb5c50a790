"""IPv6 forms of non-public addresses are refused as webhook targets, as their IPv4 forms are."""

from __future__ import annotations

import pytest

from adapters.webhook_client import UrlRefused, check_url


@pytest.mark.parametrize(
    "url",
    [
        "https://[fec0::1]/hook",  # site-local (RFC 3879: deprecated, reserved)
        "https://[2002:a9fe:a9fe::1]/hook",  # 6to4 of 169.254.169.254 (cloud metadata)
        "https://[2002:7f00:1::1]/hook",  # 6to4 of 127.0.0.1
        "https://[2002:a00:1::1]/hook",  # 6to4 of 10.0.0.1
    ],
)
def test_ipv6_forms_of_private_addresses_are_refused(url: str) -> None:
    with pytest.raises(UrlRefused):
        check_url(url)


def test_6to4_of_a_public_address_still_passes() -> None:
    assert check_url("https://[2002:5db8:d70e::1]/hook").port == 443  # 93.184.215.14
