"""The dashboard's firmware pages: upload a release, tag machines, start, watch, abort."""

from pathlib import Path

from api.services.machines import NewMachine
from tests.admin.support import admin_client, admin_stack, csrf_of, post_form
from tests.firmware import support


async def test_upload_start_watch_and_abort_from_the_pages(tmp_path: Path) -> None:
    signer = support.signer(tmp_path)
    folder = support.release_dir(tmp_path, "4.0.0", {"main.py": 900, "lib/x.mpy": 3000}, signer)
    async with (
        admin_stack(tmp_path, firmware_public_keys=signer.public_key) as stack,
        admin_client(stack) as client,
    ):
        for mid in ("p1", "p2"):
            await stack.services.machines.register(
                NewMachine(machine_id=mid, name=mid, price_amount=2500, capacity=5, stock=1)
            )
        page = await client.get("/admin/firmware")
        assert page.status_code == 200 and "No releases yet." in page.text
        parts = support.multipart(folder)
        files = [(n, (f[0].rsplit("/", 1)[-1], f[1], f[2])) for n, f in parts]  # basenames
        refused = await client.post("/admin/firmware", files=files)
        assert refused.status_code == 403  # no CSRF token
        uploaded = await client.post(
            "/admin/firmware", files=files, data={"csrf": csrf_of(page.text)}
        )
        assert uploaded.status_code == 303, uploaded.text
        page = await client.get("/admin/firmware?done=uploaded")
        assert "Release stored." in page.text and "<td>4.0.0</td>" in page.text

        tagged = await post_form(
            client,
            "/admin/firmware",
            "/admin/firmware/tags",
            {"machine_id": "p2", "tags": "canary, north"},
        )
        assert tagged.status_code == 303
        assert await stack.services.rollouts.tags("p2") == ["canary", "north"]
        started = await post_form(
            client,
            "/admin/firmware",
            "/admin/rollouts",
            {
                "version": "4.0.0",
                "target_kind": "tag",
                "tag": "canary",
                "waves": "50, 100",
                "max_failure_pct": "0",
                "deadline_h": "1",
            },
        )
        assert started.status_code == 303
        where = started.headers["location"]
        shown = await client.get(where)
        assert shown.status_code == 200
        assert ">p2</a>" in shown.text and ">p1</a>" not in shown.text
        assert 'http-equiv="refresh"' in shown.text  # live while it runs
        rid = where.rsplit("=", 1)[1]
        aborted = await post_form(client, where, f"/admin/rollouts/{rid}/abort", {})
        assert aborted.status_code == 303
        after = await client.get(where)
        assert "aborted" in after.text and "canceled" in after.text
        bad = await post_form(
            client, "/admin/firmware", "/admin/rollouts", {"version": "9.9.9", "waves": "100"}
        )
        assert bad.status_code == 404
