"""The demo server, through HTTP on an ephemeral port: every endpoint, the same seed's same bytes,
uploads of a photo and of a generated face, and every kind of bad request."""
import base64
import io
import json
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from tinygan import model_files, sampling
from tinygan.demo import make_server
from tinygan.demo.uploads import MAX_UPLOAD_BYTES
from tinygan.synthetic import synthetic_face



@pytest.fixture(scope="module")
def server(run_dir):
    server = make_server(run_dir, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def request(url, data=None, headers=None, method=None):
    """(status, headers, body bytes); HTTP errors are answers too."""
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def multipart(field, filename, payload, boundary="tinygan-test-boundary"):
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def decode_data_url(url):
    return base64.b64decode(url.split(",", 1)[1])


def assert_one_line_error(status, body, expected_status, words):
    assert status == expected_status, (status, body)
    message = json.loads(body)["error"]
    assert "\n" not in message and words in message, message


def test_it_listens_on_this_machine_only_by_default(run_dir):
    server = make_server(run_dir, port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()


def test_the_page_is_self_contained(server):
    status, headers, body = request(server + "/")
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    for tab in ("Paint", "Walk", "Arithmetic", "Judge", "Find me", "Run"):
        assert f">{tab}</button>" in page
    assert "http://" not in page and "https://" not in page        # nothing fetched from elsewhere: works offline


def test_info_describes_the_model_and_the_run(server, run_dir):
    status, _, body = request(server + "/api/info")
    info = json.loads(body)
    assert status == 200 and info["model"]["nz"] == 8 and info["discriminator"] and info["run"]
    assert info["checkpoint"].endswith("ckpt_000002.npz") and "NOT a deepfake detector" in info["warning"]


def test_faces_are_the_seeds_faces_and_the_same_seed_gives_the_same_bytes(server, run_dir):
    status, headers, body = request(server + "/api/faces?seeds=0-15")
    first = json.loads(body)
    assert status == 200 and first["seeds"] == list(range(16)) and float(headers["X-Elapsed-Ms"]) > 0
    again = json.loads(request(server + "/api/faces?seeds=3,9")[2])
    assert again["images"] == [first["images"][3], first["images"][9]]
    with Image.open(io.BytesIO(decode_data_url(first["images"][3]))) as face:
        pixels = np.asarray(face)
    expected = sampling.generate_images(model_files.load_generator(run_dir), [3])[0]
    assert np.abs(pixels.astype(int) - expected).max() <= 1


def test_walk_starts_at_one_seed_and_ends_at_the_other(server):
    start = request(server + "/api/walk?a=3&b=9&t=0")
    end = request(server + "/api/walk?a=3&b=9&t=1")
    middle = request(server + "/api/walk?a=3&b=9&t=0.5")
    assert start[0] == end[0] == middle[0] == 200 and start[1]["Content-Type"] == "image/png"
    faces = json.loads(request(server + "/api/faces?seeds=3,9")[2])["images"]
    assert start[2] == decode_data_url(faces[0]) and end[2] == decode_data_url(faces[1])
    assert middle[2] not in (start[2], end[2])
    assert request(server + "/api/walk?a=3&b=9&t=0.5")[2] == middle[2]        # the same frame, the same bytes


def test_arithmetic_paints_the_groups_and_the_answer(server):
    status, headers, body = request(server + "/api/arithmetic?a=1,2,3&b=4,5&c=6")
    assert status == 200 and headers["Content-Type"] == "image/png"
    with Image.open(io.BytesIO(body)) as picture:
        assert picture.size == (4 * 66 + 2, 4 * 66 + 2)         # 3 + 1 columns, 4 rows of 64 px tiles


def test_judge_a_photo_and_a_generated_face(server, tmp_path):
    photo = io.BytesIO()
    synthetic_face(np.random.default_rng(1)).save(photo, format="JPEG")
    generated = decode_data_url(json.loads(request(server + "/api/faces?seeds=5")[2])["images"][0])
    for payload, crop in ((photo.getvalue(), "centre crop 0.719"), (generated, "judged as it is")):
        for body, headers in (multipart("image", "face.jpg", payload), (payload, {"Content-Type": "image/jpeg"})):
            status, _, answer = request(server + "/api/judge", data=body, headers=headers)
            result = json.loads(answer)
            assert status == 200 and 0 <= result["probability"] <= 1 and crop in result["crop"]
            assert result["verdict"] in ("real", "fake") and "NOT a deepfake detector" in result["warning"]
            with Image.open(io.BytesIO(decode_data_url(result["face"]))) as seen:
                assert seen.size == (64, 64)


def form(image, boundary="tinygan-form", **fields):
    """A multipart body with the image and text fields, and its headers."""
    parts = [(f'Content-Disposition: form-data; name="image"; filename="photo.png"\r\n'
              f'Content-Type: image/png\r\n\r\n').encode() + image]
    parts += [f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode()
              for name, value in fields.items()]
    body = b"".join(f"--{boundary}\r\n".encode() + part + b"\r\n" for part in parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_judge_frames_the_photo_by_a_box_or_the_eyes_and_shows_where_d_looks(server):
    photo = np.random.default_rng(3).integers(0, 256, (150, 120, 3), dtype=np.uint8)
    status, _, answer = request(server + "/api/judge", *form(png(photo), box="10,20,96", explain="1"))
    result = json.loads(answer)
    assert status == 200 and "the box left 10, top 20, side 96" in result["crop"] and result["role"] == "gan"
    expected = np.asarray(Image.fromarray(photo).resize((64, 64), Image.LANCZOS, box=(10, 20, 106, 116)))
    with Image.open(io.BytesIO(decode_data_url(result["face"]))) as seen:
        np.testing.assert_array_equal(np.asarray(seen), expected)          # exactly what the box holds
    with Image.open(io.BytesIO(decode_data_url(result["explain"]))) as explained:
        assert explained.size == (3 * 256 + 8, 256)
    status, _, answer = request(server + "/api/judge", *form(png(photo), eyes="45,70,75,72"))
    assert status == 200 and "aligned by the eyes" in json.loads(answer)["crop"]
    assert "explain" not in json.loads(answer)
    assert_one_line_error(*request(server + "/api/judge", *form(png(photo), box="1,2"))[::2], 400,
                          "box (left,top,side) must be 3 numbers")
    assert_one_line_error(*request(server + "/api/judge", *form(png(photo), box="100,20,96"))[::2], 422,
                          "reaches outside the 120x150 photo")


def test_a_judge_file_answers_no_verdict_for_what_is_no_face_photo(tmp_path, run_dir):
    from helpers import oval_faces
    from tinygan import judge
    G, D = model_files.load_generator(run_dir), model_files.load_discriminator(run_dir)
    judge_D, faces, _ = judge.make_judge(G, model_files.load_discriminator(run_dir), oval_faces(96, seed=2),
                                         held_out=32, steps=3, batch_size=16, say=None)
    path = model_files.save_generator(G, tmp_path / "g.npz", D=D, judge=(judge_D, faces))
    server = make_server(path, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert json.loads(request(url + "/api/info")[2])["judge"] == "judge"
        status, _, body = request(url + "/api/judge", png(np.full((64, 64, 3), 128, np.uint8)),
                                  {"Content-Type": "image/png"})
        result = json.loads(body)
        assert status == 200 and result["verdict"] == "no verdict" and not result["is_face"]
        assert "knows only face photos" in result["not_a_face"] and result["role"] == "judge"
    finally:
        server.shutdown()
        server.server_close()


def test_the_run_panel_reads_the_run_folder(server):
    status, _, body = request(server + "/api/run")
    run = json.loads(body)
    assert status == 200 and run["step"] == 2 and run["total_steps"] == 2 and len(run["rows"]) == 2
    assert run["samples_step"] == 2 and run["img_per_s"] > 0
    assert all(0 <= row[key] <= 1 for row in run["rows"] for key in ("d_acc_real", "d_acc_fake", "d_acc"))
    page = request(server + "/")[2].decode()
    assert 'id="run-accuracy"' in page and '"d_acc"' in page                # the Run tab shows D's accuracy
    status, headers, body = request(server + "/api/run/samples.png")
    assert status == 200 and body.startswith(b"\x89PNG")


def test_bad_requests_get_a_4xx_with_one_line_and_the_server_keeps_serving(server):
    good = png(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    huge = io.BytesIO()
    Image.new("1", (8000, 8000)).save(huge, format="PNG")                 # 64 million pixels in a few KB
    gif_text = b"GIF89a" + b"\0" * 10
    cases = [
        (request(server + "/api/judge", b"just text", {"Content-Type": "image/png"}), 415, "not an image"),
        (request(server + "/api/judge", good[:len(good) // 2], {"Content-Type": "image/png"}), 422,
         "cannot use this image: corrupt or truncated"),
        (request(server + "/api/judge", huge.getvalue(), {"Content-Type": "image/png"}), 413, "more than 16,000,000"),
        (request(server + "/api/judge", b"x" * (MAX_UPLOAD_BYTES + 1), {"Content-Type": "image/png"}), 413,
         "more than 10,485,760"),
        (request(server + "/api/judge", *multipart("photo", "a.png", good)), 400, "field named 'image'"),
        (request(server + "/api/judge", b"--x\r\nnonsense", {"Content-Type": "multipart/form-data"}), 400,
         "malformed multipart form"),
        (request(server + "/api/judge", b"", {"Content-Type": "image/png"}), 400, "no image"),
        (request(server + "/api/judge", gif_text, {"Content-Type": "image/gif"}), 415, "not an image"),
        (request(server + "/api/faces", b"x", {}, "POST"), 405, "uploads go to /api/judge or /api/project"),
        (request(server + "/api/project?id=banana"), 400, "id must be a number"),
        (request(server + "/api/faces?seeds=3,../../x.npy"), 400, "seeds must be numbers here"),
        (request(server + "/api/walk?a=p%C2%B2&b=2&t=0"), 400, "a must be a number"),
        (request(server + "/api/project?id=999"), 404, "no projection 999"),
        (request(server + "/api/walk?a=p999&b=2&t=0"), 404, "no finished projection 999"),
        (request(server + "/", method="DELETE"), 405, "use GET or POST"),
        (request(server + "/secret/../../etc/passwd"), 404, "no such page"),
        (request(server + "/api/faces?seeds=banana"), 400, "seeds must look like"),
        (request(server + "/api/faces?seeds=0-999"), 400, "at most 64 seeds"),
        (request(server + "/api/walk?a=1&b=2&t=7"), 400, "t must be a number from 0.0 to 1.0"),
        (request(server + "/api/walk?a=-1&b=2&t=0"), 400, "a must be a number"),
        (request(server + "/api/arithmetic?a=1&b=2"), 400, "c:"),
    ]
    for (status, _, body), expected, words in cases:
        assert_one_line_error(status, body, expected, words)
    assert request(server + "/api/faces?seeds=1")[0] == 200                  # still serving


def test_find_me_projects_one_photo_at_a_time_and_walks_from_it_to_a_seed(server):
    photo = np.random.default_rng(4).integers(0, 256, (150, 120, 3), dtype=np.uint8)
    status, _, answer = request(server + "/api/project", *form(png(photo), box="10,20,96"))
    started = json.loads(answer)
    assert status == 200 and "the box left 10, top 20, side 96" in started["crop"] and started["features"]
    assert_one_line_error(*request(server + "/api/project", *form(png(photo)))[::2], 409, "one at a time")
    frames, since = [], 0
    for _ in range(600):
        progress = json.loads(request(server + f"/api/project?id={started['id']}&since={since}")[2])
        frames += progress["frames"]
        since = progress["count"]
        if progress["state"] != "running":
            break
        time.sleep(0.1)
    assert progress["state"] == "done" and progress["step"] == progress["steps"] and progress["psnr"] > 0
    assert len(frames) == progress["steps"] // 10 + 1 == since                     # every frame once, step 0 first
    start, end = (request(server + f"/api/walk?a=p{started['id']}&b=3&t={t}")[2] for t in (0, 1))
    assert end == decode_data_url(json.loads(request(server + "/api/faces?seeds=3")[2])["images"][0])
    assert np.abs(np.asarray(Image.open(io.BytesIO(start))).astype(int) -
                  np.asarray(Image.open(io.BytesIO(decode_data_url(frames[-1]))))).max() <= 1   # the face it found
    assert request(server + "/api/project", *form(png(photo)))[0] == 200          # the next one may start


def test_a_projection_stops_at_its_time_limit_with_the_best_face_so_far(run_dir):
    from tinygan.demo.finding import Projections
    G, D = model_files.load_generator(run_dir), model_files.load_discriminator(run_dir)
    projections = Projections(steps=10 ** 6, seconds=0.5)
    job = projections.start(G, D, np.zeros((64, 64, 3), np.uint8))
    for _ in range(300):
        if projections.status(job)["state"] != "running":
            break
        time.sleep(0.1)
    status = projections.status(job)
    assert status["state"] == "done" and 0 < status["step"] < 10 ** 6 and status["seconds"] < 20
    assert projections.z(job).shape == (1, 8, 1, 1) and len(status["frames"]) >= 2


def test_parallel_requests_are_served_one_model_call_at_a_time(server):
    results = []

    def fetch(seed):
        results.append(request(server + f"/api/walk?a={seed}&b={seed + 1}&t=0.3"))
    threads = [threading.Thread(target=fetch, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [status for status, _, _ in results] == [200] * 8
    alone = request(server + "/api/walk?a=0&b=1&t=0.3")[2]
    assert alone in [body for _, _, body in results]


def test_without_a_discriminator_judge_says_so(tmp_path, run_dir):
    G = model_files.load_generator(run_dir)
    model_files.save_generator(G, tmp_path / "g.npz")
    server = make_server(tmp_path / "g.npz", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert json.loads(request(url + "/api/info")[2])["discriminator"] is False
        blank = png(np.zeros((64, 64, 3), np.uint8))
        status, _, body = request(url + "/api/judge", blank, {"Content-Type": "image/png"})
        assert_one_line_error(status, body, 409, "holds no discriminator")
        assert_one_line_error(*request(url + "/api/run")[::2], 404, "without a training run")
    finally:
        server.shutdown()
        server.server_close()


def test_a_bad_or_taken_port_is_one_error_line(server, run_dir, capsys):
    from tinygan.cli import main
    for port, words in (("99999", "from 0 to 65535"), ("x", "whole number")):
        with pytest.raises(SystemExit) as stop:                # argparse refuses it
            main(["demo", str(run_dir), "--port", port])
        assert stop.value.code == 2
        assert words in capsys.readouterr().err.strip().splitlines()[-1]
    taken = server.rsplit(":", 1)[1]                            # the module's server listens there
    assert main(["demo", str(run_dir), "--port", taken]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tinygan demo: error: cannot listen on 127.0.0.1:" + taken), err
