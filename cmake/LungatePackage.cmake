# The man page, `cmake --install` and `cpack -G DEB` (issue 18).
#
# lungate(8) is generated at build time from src/dist/lungate.8.scd (scdoc).
# Installed: the binary, the man page, lungate.service (Type=notify,
# ExecReload), bash completion, the examples, and an empty config at
# SYSCONFDIR/lungate/lungate.json unless one is there (the package's postinst
# does that instead, so dpkg never owns a file saveconfig rewrites).
# The .deb's dependencies come from dpkg-shlibdeps, plus the programs lungate
# runs (qemu-nbd, fusermount3); it enables and starts nothing.
include(GNUInstallDirs)

find_program(SCDOC_PROGRAM scdoc REQUIRED) # Debian's scdoc (scripts/deps.sh)
set(LUNGATE_MAN ${CMAKE_BINARY_DIR}/lungate.8)
add_custom_command(OUTPUT ${LUNGATE_MAN} ${LUNGATE_MAN}.gz
  COMMAND ${SCDOC_PROGRAM} < ${CMAKE_SOURCE_DIR}/src/dist/lungate.8.scd > ${LUNGATE_MAN}
  COMMAND gzip -9nc ${LUNGATE_MAN} > ${LUNGATE_MAN}.gz
  DEPENDS ${CMAKE_SOURCE_DIR}/src/dist/lungate.8.scd
  COMMENT "lungate(8): scdoc src/dist/lungate.8.scd")
add_custom_target(lungate_man ALL DEPENDS ${LUNGATE_MAN} ${LUNGATE_MAN}.gz)

install(FILES ${LUNGATE_MAN}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${CMAKE_SOURCE_DIR}/src/dist/lungate.bash-completion
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME lungate)
install(FILES ${CMAKE_SOURCE_DIR}/src/dist/lungate.json DESTINATION ${CMAKE_INSTALL_DATADIR}/lungate)
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
# The unit and the config the service serves, with the paths of the prefix
# installed to (CPack installs with /usr, whatever the build was configured
# with): /usr -> /etc/lungate/lungate.json, else PREFIX/etc/lungate.  The
# config is never overwritten, and not put in the package (CPack's staging
# DESTDIR), where postinst creates it so dpkg never owns a file that
# saveconfig rewrites.
install(CODE "
  if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
    set(LUNGATE_CONFIG_DIR /etc/lungate)
  else()
    set(LUNGATE_CONFIG_DIR \"\${CMAKE_INSTALL_PREFIX}/etc/lungate\")
  endif()
  set(LUNGATE_CONFIG \"\${LUNGATE_CONFIG_DIR}/lungate.json\")
  set(CMAKE_INSTALL_FULL_BINDIR \"\${CMAKE_INSTALL_PREFIX}/bin\")
  configure_file(${CMAKE_SOURCE_DIR}/src/dist/lungate.service.in
    ${CMAKE_BINARY_DIR}/install/lungate.service @ONLY)
  file(INSTALL ${CMAKE_BINARY_DIR}/install/lungate.service
    DESTINATION \"\${CMAKE_INSTALL_PREFIX}/lib/systemd/system\")
  if(\"\$ENV{DESTDIR}\" MATCHES \"/_CPack_Packages/\")
    message(STATUS \"Not in the package: \${LUNGATE_CONFIG} (postinst creates it)\")
  elseif(EXISTS \"\$ENV{DESTDIR}\${LUNGATE_CONFIG}\")
    message(STATUS \"Kept: \$ENV{DESTDIR}\${LUNGATE_CONFIG}\")
  else()
    file(INSTALL ${CMAKE_SOURCE_DIR}/src/dist/lungate.json DESTINATION \"\${LUNGATE_CONFIG_DIR}\"
      FILE_PERMISSIONS OWNER_READ OWNER_WRITE
      DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)
  endif()")

set(CPACK_PACKAGE_NAME lungate)
set(CPACK_PACKAGE_VENDOR "lungate")
set(CPACK_PACKAGE_CONTACT "lungate maintainers <lungate@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "userspace iSCSI target for disk images and diskless boot")
set(CPACK_PACKAGE_DESCRIPTION "lungate serves disk images over iSCSI from user space: raw images, qcow2 through qemu-nbd, NBD exports and per-client copy-on-write overlays, configured like LIO (targetcli's commands, rtslib-fb's saveconfig.json).")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# dpkg-shlibdeps: libjansson4, libnbd0, ...; CPackDeb finds the ELF files to
# give it with file(1), and without file fails ("Problem compressing the
# directory"): scripts/deps.sh installs it
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "fuse3, qemu-utils") # fusermount3; qemu-nbd for qcow2 LUNs
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libiscsi-bin")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_SOURCE_DIR}/src/dist/deb/postinst ${CMAKE_SOURCE_DIR}/src/dist/deb/prerm
  ${CMAKE_SOURCE_DIR}/src/dist/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
