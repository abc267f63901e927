"""The identity service: accounts, sessions, devices, verification, staff, rights (README).

The composition root: the only module that imports the features' views."""

from pathlib import Path

import expensura_events.catalog  # noqa: F401  (registers the event types)
from expensura_events.runtime import ServiceDefinition
from expensura_events.topology import ServiceName, service
from expensura_events.web.app import create_app
from expensura_identity.accounts.views import internal_router as release_router
from expensura_identity.accounts.views import router as accounts_router
from expensura_identity.auth.projection import TokenKeyContainment
from expensura_identity.auth.service import published_keys, retention
from expensura_identity.auth.views import router as auth_router
from expensura_identity.email_proof.views import router as email_proof_router
from expensura_identity.erasure import erase_identity_state
from expensura_identity.personalisation.projection import PersonalisationProfiles
from expensura_identity.personalisation.views import router as personalisation_router
from expensura_identity.profile.views import router as profile_router
from expensura_identity.rights.projection import ErasureCertificates, PolicyRefusals
from expensura_identity.rights.service import readings
from expensura_identity.rights.views import router as rights_router
from expensura_identity.rights.worker import cancellation_worker
from expensura_identity.settings import IdentitySettings
from expensura_identity.staff.projection import StaffSessionContainment
from expensura_identity.staff.views import router as staff_router
from expensura_identity.verification.views import router as verification_router
from expensura_identity.verification.worker import verification_worker

service_definition = ServiceDefinition(
    spec=service(ServiceName.IDENTITY),
    description="Accounts, devices, real-name verification, staff access and data-subject "
    "rights for Expensura.",
    migrations=Path(__file__).parent / "migrations",
    routers=[
        accounts_router,
        email_proof_router,
        auth_router,
        profile_router,
        verification_router,
        staff_router,
        rights_router,
        personalisation_router,
        release_router,
    ],
    settings_class=IdentitySettings,
    projections=[
        ErasureCertificates,
        PolicyRefusals,
        PersonalisationProfiles,
        StaffSessionContainment,
        TokenKeyContainment,
    ],
    workers=[cancellation_worker, verification_worker],
    erase_subject=erase_identity_state,
    retention=retention,
    published_token_keys=published_keys,
    readings=readings,
)

app = create_app(service_definition)
