"""ZIP downloads through gunicorn from the real embedded S3: the bytes, and pages kept answering
while several ZIPs stream to slow clients."""

import io
import os
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.conftest import server_client
from tests.integration.test_runportal import running_portal

BIG = 24 * 1024**2  # more than the sockets buffer: a slow reader holds its worker thread
SLOW_ZIPS = 4
PAGES = 5
STREAM_SECONDS = 4


def test_folder_zip_through_gunicorn_matches_the_objects(tmp_path):
    files = {
        "set/a.txt": b"alpha",
        "set/sub/ü-name.bin": os.urandom(3 * 1024**2 + 17),  # several read chunks
        "set/sub/deeper/empty.txt": b"",
    }
    with running_portal(tmp_path) as portal:
        raw = server_client(portal.server)
        raw.create_bucket(Bucket="zips")
        for key, body in files.items():
            raw.put_object(Bucket="zips", Key=key, Body=body)
        session = portal.session()
        response = session.get(f"{portal.base}/b/zips/zip/", params={"prefix": "set/"}, timeout=30)
        assert response.status_code == 200
        assert int(response.headers["Content-Length"]) == len(response.content)
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            assert {info.filename: archive.read(info) for info in archive.infolist()} == {
                key.removeprefix("set/"): body for key, body in files.items()
            }


def _slow_zip(url: str, cookies: dict[str, str], until: float) -> int:
    # Reads a little, pauses: the worker thread sending it waits on a full socket meanwhile.
    received = 0
    with requests.get(url, cookies=cookies, stream=True, timeout=30) as response:
        assert response.status_code == 200
        for chunk in response.iter_content(64 * 1024):
            received += len(chunk)
            if time.monotonic() > until:
                break
            time.sleep(0.1)
    return received


def _timed_page(url: str, cookies: dict[str, str]) -> tuple[int, float]:
    started = time.monotonic()
    status = requests.get(url, cookies=cookies, timeout=30).status_code
    return status, time.monotonic() - started


def test_slow_zip_downloads_do_not_starve_other_pages(tmp_path):
    with running_portal(tmp_path) as portal:
        raw = server_client(portal.server)
        raw.create_bucket(Bucket="zips")
        raw.put_object(Bucket="zips", Key="big/blob.bin", Body=os.urandom(BIG))
        raw.put_object(Bucket="zips", Key="big/small.txt", Body=b"small")
        cookies = portal.session().cookies.get_dict()
        zip_url = f"{portal.base}/b/zips/zip/?prefix=big/"
        until = time.monotonic() + STREAM_SECONDS
        with ThreadPoolExecutor(SLOW_ZIPS + PAGES) as pool:
            zips = [pool.submit(_slow_zip, zip_url, cookies, until) for _ in range(SLOW_ZIPS)]
            time.sleep(1)  # every ZIP is streaming now
            pages = [
                f"{portal.base}/buckets/",
                f"{portal.base}/b/zips/",
                f"{portal.base}/b/zips/?prefix=big/",
                f"{portal.base}/links/",
                f"{portal.base}/activity/",
            ]
            answers = [pool.submit(_timed_page, page, cookies) for page in pages]
            results = [answer.result() for answer in answers]
            received = [future.result() for future in zips]
        assert [status for status, _ in results] == [200] * PAGES
        slowest = max(elapsed for _, elapsed in results)
        assert slowest < 1, f"a page took {slowest:.2f} s while {SLOW_ZIPS} ZIPs streamed"
        assert all(0 < count < BIG for count in received), received  # still streaming at the end
        print(f"{SLOW_ZIPS} slow ZIPs streaming: slowest page {slowest:.2f} s")
