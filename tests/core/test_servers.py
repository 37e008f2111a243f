"""The shared test servers really work: S3 round trip through moto's server, a page in Chromium."""

from __future__ import annotations

from typing import Any

import boto3
import pytest


def test_moto_server_round_trip(s3_endpoint: str) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="smoke")
    s3.put_object(Bucket="smoke", Key="a/b.txt", Body=b"hello")
    assert s3.get_object(Bucket="smoke", Key="a/b.txt")["Body"].read() == b"hello"


@pytest.mark.browser
def test_chromium_renders_a_page(browser: Any) -> None:
    page = browser.new_page()
    page.set_content("<button id=b onclick=\"this.textContent='clicked'\">go</button>")
    page.click("#b")
    assert page.text_content("#b") == "clicked"
    page.close()
