"""The services and read models a running SmartVend is made of, as one typed group.

They are built once, by the composition root (``api.server.runtime.build_services``).
"""

from dataclasses import dataclass

from api.payments.base import PaymentGateway
from api.services.admins import Admins
from api.services.alerts import Alerts
from api.services.audit import Audit
from api.services.catalogue import Catalogue
from api.services.context import Context
from api.services.dispense import Dispense
from api.services.feedback import Feedbacks
from api.services.firmware import Firmware
from api.services.locks import Locks
from api.services.machines import Machines
from api.services.manual_refund import ManualRefunds
from api.services.orders import Orders
from api.services.reconcile import Reconciler
from api.services.refunds import Refunds
from api.services.reservation import Reservations
from api.services.rollouts import Rollouts
from api.services.slots import Slots
from api.services.sweeper import Sweeper
from api.services.webhooks import Webhooks
from api.services.webhooks_out import OutgoingWebhooks
from api.views.admin import AdminViews
from api.views.feedback import FeedbackViews
from api.views.fleet_stats import FleetStats
from api.views.orders import OrderViews
from api.views.public import Views


@dataclass(frozen=True)
class Services:
    ctx: Context
    admins: Admins
    alerts: Alerts
    machines: Machines
    locks: Locks
    reservations: Reservations
    orders: Orders
    dispense: Dispense
    feedback: Feedbacks
    refunds: Refunds
    sweeper: Sweeper
    views: Views
    webhooks: Webhooks
    reconciler: Reconciler
    gateway: PaymentGateway
    # What the operator's pages read and do, built once like the rest.
    admin_views: AdminViews
    order_views: OrderViews
    feedback_views: FeedbackViews
    fleet_stats: FleetStats
    manual_refunds: ManualRefunds
    firmware: Firmware
    rollouts: Rollouts
    catalogue: Catalogue
    slots: Slots
    audit: Audit
    outgoing_webhooks: OutgoingWebhooks
