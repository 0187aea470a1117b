"""The monitoring alerts endpoint, compatible with the PagerDuty Events API v2: a thin view over
``integrations.alerts`` that commits, then hands a critical alert's page to the paging queue at once."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from integrations import alerts, events_api
from runtime.web import rt
from ticketing.db import transaction
from workers.dispatch import claim_for_response, hand_off_after_response

log = logging.getLogger(__name__)
blueprint = Blueprint("alerts", __name__, url_prefix="/integrations/events")


@blueprint.url_value_preprocessor
def events_api_body_limit(_endpoint: str | None, _values: dict[str, object] | None) -> None:
    """An event may be up to 512 KiB, as the Events API allows, whatever the app's own limit."""
    request.max_content_length = events_api.MAX_BODY_BYTES


@blueprint.errorhandler(413)
def too_large(_error: Exception) -> tuple[Response, int]:
    """Over 512 KiB: the Events API's answer, in JSON."""
    return jsonify(alerts.too_large().body), 413


@blueprint.post("/v2/enqueue")
def enqueue() -> tuple[Response, int]:
    """One Events API v2 event: trigger, acknowledge or resolve an alert of the routing key's client."""
    runtime = rt()
    raw = request.get_data(cache=False)
    for attempt in (1, 2):
        try:
            with transaction(runtime.sessions) as s:
                answer = alerts.enqueue(s, runtime, raw)
                claimed = claim_for_response(s, runtime) if answer.status == 202 else []
            break
        except IntegrityError:
            # Two triggers of one dedup key met at the unique constraint: the second, run again, joins the first.
            if attempt == 2:
                raise
        except SQLAlchemyError:
            log.exception("alert event not stored")
            return jsonify(status="error", message="Event not stored, send it again"), 503
    response = jsonify(answer.body)
    if claimed:
        hand_off_after_response(response, runtime, claimed)
    return response, answer.status
