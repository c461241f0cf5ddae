"""The catalogue of ready services beyond Postgres and Redis (issue 17): one module per service
(its Service subclass, its fixtures and its image provider), its recipe in plugin/recipes/<name>/.
This package only re-exports their fixtures, so that pytest finds them (plugin/__init__.py lists
it in ``pytest_plugins``)."""

from pytest_pods.plugin.catalog.browser import chromium, chromium_container, chromium_image
from pytest_pods.plugin.catalog.etcd import etcd, etcd_image
from pytest_pods.plugin.catalog.mariadb import mariadb, mariadb_image
from pytest_pods.plugin.catalog.memcached import memcached, memcached_image
from pytest_pods.plugin.catalog.mosquitto import mosquitto, mosquitto_image
from pytest_pods.plugin.catalog.nats import nats, nats_image
from pytest_pods.plugin.catalog.nginx import nginx, nginx_container, nginx_image
from pytest_pods.plugin.catalog.openldap import openldap, openldap_container, openldap_image
from pytest_pods.plugin.catalog.rabbitmq import rabbitmq, rabbitmq_image
from pytest_pods.plugin.catalog.registry import registry, registry_container, registry_image
from pytest_pods.plugin.catalog.s3 import s3, s3_image
from pytest_pods.plugin.catalog.sftp import sftp, sftp_container, sftp_image
from pytest_pods.plugin.catalog.smtp import smtp, smtp_image

__all__ = ["chromium", "chromium_container", "chromium_image",
           "etcd", "etcd_image",
           "mariadb", "mariadb_image", "memcached", "memcached_image", "mosquitto", "mosquitto_image",
           "nats", "nats_image",
           "nginx", "nginx_container", "nginx_image",
           "openldap", "openldap_container", "openldap_image",
           "rabbitmq", "rabbitmq_image", "registry", "registry_container", "registry_image",
           "s3", "s3_image",
           "sftp", "sftp_container", "sftp_image",
           "smtp", "smtp_image"]
