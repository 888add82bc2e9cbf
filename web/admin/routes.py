"""The dashboard's routes, all under /admin."""

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from web.admin import (
    alert_pages,
    audit_pages,
    auth_pages,
    firmware_pages,
    fleet_pages,
    integrator_pages,
    machine_pages,
    order_pages,
    report_pages,
    slot_pages,
    user_pages,
    webhook_pages,
)

STATIC = Path(__file__).resolve().parent.parent / "static" / "admin"


def routes() -> list[BaseRoute]:
    m = machine_pages
    return [
        Route("/admin", fleet_pages.fleet, methods=["GET"], name="admin_fleet"),
        Route("/admin/events", fleet_pages.events, methods=["GET"], name="admin_events"),
        Route("/admin/login", auth_pages.login_page, methods=["GET"], name="admin_login"),
        Route("/admin/login", auth_pages.login, methods=["POST"]),
        Route("/admin/logout", auth_pages.logout, methods=["POST"]),
        Route("/admin/machines/new", m.new_form, methods=["GET"]),
        Route("/admin/machines/new", m.register, methods=["POST"]),
        Route("/admin/machines/{mid}", m.detail, methods=["GET"]),
        Route("/admin/machines/{mid}/stock", m.set_stock, methods=["POST"]),
        Route("/admin/machines/{mid}/price", m.set_price, methods=["POST"]),
        Route("/admin/machines/{mid}/mode", m.set_mode, methods=["POST"]),
        Route("/admin/machines/{mid}/rotate-key", m.rotate_key, methods=["POST"]),
        Route("/admin/machines/{mid}/revoke-key", m.revoke_key, methods=["POST"]),
        Route("/admin/machines/{mid}/slots", slot_pages.planogram, methods=["GET"]),
        Route("/admin/machines/{mid}/slots", slot_pages.save_planogram, methods=["POST"]),
        Route("/admin/machines/{mid}/restock", slot_pages.restock, methods=["POST"]),
        Route("/admin/machines/{mid}/slots/copy", slot_pages.copy_planogram, methods=["POST"]),
        Route("/admin/products", slot_pages.products, methods=["GET"]),
        Route("/admin/products", slot_pages.create_product, methods=["POST"]),
        Route("/admin/products/{pid}", slot_pages.update_product, methods=["POST"]),
        Route("/admin/picklist", slot_pages.picklist, methods=["GET"]),
        Route("/admin/picklist.csv", slot_pages.picklist_csv, methods=["GET"]),
        Route("/admin/orders", order_pages.order_list, methods=["GET"]),
        Route("/admin/orders.csv", order_pages.order_csv, methods=["GET"]),
        Route("/admin/orders/{oid}", order_pages.order_detail, methods=["GET"]),
        Route("/admin/orders/{oid}/refund", order_pages.refund, methods=["POST"]),
        Route("/admin/integrators", integrator_pages.integrators, methods=["GET"]),
        Route("/admin/integrators", integrator_pages.create, methods=["POST"]),
        Route("/admin/integrators/{username}/revoke", integrator_pages.revoke, methods=["POST"]),
        Route("/admin/alerts", alert_pages.alerts, methods=["GET"]),
        Route("/admin/alerts/run", alert_pages.run_checks, methods=["POST"]),
        Route("/admin/machines/{mid}/threshold", alert_pages.set_threshold, methods=["POST"]),
        Route("/admin/reports", report_pages.reports, methods=["GET"]),
        Route("/admin/reports.csv", report_pages.report_csv, methods=["GET"]),
        Route("/admin/firmware", firmware_pages.firmware, methods=["GET"]),
        Route("/admin/firmware", firmware_pages.upload, methods=["POST"]),
        Route("/admin/firmware/tags", firmware_pages.tags, methods=["POST"]),
        Route("/admin/rollouts", firmware_pages.start, methods=["POST"]),
        Route("/admin/rollouts", firmware_pages.rollout, methods=["GET"]),
        Route("/admin/rollouts/{rid}/resume", firmware_pages.resume, methods=["POST"]),
        Route("/admin/rollouts/{rid}/abort", firmware_pages.abort, methods=["POST"]),
        Route("/admin/users", user_pages.users, methods=["GET"]),
        Route("/admin/users", user_pages.create, methods=["POST"]),
        Route("/admin/users/{username}", user_pages.change, methods=["POST"]),
        Route("/admin/audit", audit_pages.audit_page, methods=["GET"]),
        Route("/admin/audit.csv", audit_pages.audit_csv, methods=["GET"]),
        Route("/admin/webhooks", webhook_pages.webhooks, methods=["GET"]),
        Route("/admin/webhooks", webhook_pages.create, methods=["POST"]),
        Route("/admin/webhooks/{hook_id}/test", webhook_pages.send_test, methods=["POST"]),
        Route("/admin/webhooks/{hook_id}/delete", webhook_pages.delete, methods=["POST"]),
        Mount("/admin/static", app=StaticFiles(directory=str(STATIC)), name="admin_static"),
    ]
