# A surveyctl lab machine: `vm` (sshd + its own Docker Engine) or `cloud` (sshd +
# OpenVPN server + MariaDB). BASE_IMAGE is a Debian root made by debootstrap
# (`surveyctl lab up` passes it); the role comes from LAB_ROLE when the container starts.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN rm -f /etc/ssh/ssh_host_* \
 && sed -i 's/^session\s\+required\s\+pam_loginuid\.so/session optional pam_loginuid.so/' /etc/pam.d/sshd \
 && useradd --create-home --shell /bin/bash deploy \
 && usermod --password '*' deploy \
 && if getent group docker >/dev/null; then usermod -aG docker deploy; fi
COPY sshd.conf /etc/ssh/sshd_config.d/surveyctl-lab.conf
COPY entrypoint.sh /usr/local/sbin/lab-entrypoint
RUN chmod 0755 /usr/local/sbin/lab-entrypoint && chmod 0644 /etc/ssh/sshd_config.d/surveyctl-lab.conf
ENV LAB_ROLE=vm
ENTRYPOINT ["/usr/local/sbin/lab-entrypoint"]
