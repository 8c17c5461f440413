# Installation and the Debian package (CPack): `cpack -G DEB` in the build directory writes
# sarloop_<version>_<arch>.deb. It installs the five services, sarloopctl and the dev PKI tool under
# /usr/bin, the systemd unit, the default authorisation policy, and creates the `sarloop` system
# user; removing it stops the units it started and `purge` removes the user. Dependencies are
# worked out by dpkg-shlibdeps from the binaries.
install(TARGETS sarloop-ukfiu sarloop-force sarloop-racu sarloop-nca sarloop-linkage sarloopctl
        RUNTIME DESTINATION bin)
install(PROGRAMS ${PROJECT_SOURCE_DIR}/tools/pki/sarloop-pki DESTINATION bin)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/policy/sarloop-policy.textproto
        DESTINATION share/sarloop)
# The unit in deploy/systemd runs binaries from /usr/local/bin (installed by hand); the package's
# are in /usr/bin.
file(READ ${PROJECT_SOURCE_DIR}/deploy/systemd/sarloop@.service _sarloop_unit)
string(REPLACE "/usr/local/bin/" "/usr/bin/" _sarloop_unit "${_sarloop_unit}")
file(WRITE ${PROJECT_BINARY_DIR}/deploy/sarloop@.service "${_sarloop_unit}")
install(FILES ${PROJECT_BINARY_DIR}/deploy/sarloop@.service DESTINATION lib/systemd/system)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sarloop)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Closes the feedback loop on SARs about law-enforcement personnel (UKFIU, forces, RACUs, NCA)")
set(CPACK_PACKAGE_CONTACT "sarloop maintainers <maintainers@users.noreply.b-seed-c837eed1.example>")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Debug information stays in the build tree.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, openssl")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/deploy/debian/postinst ${PROJECT_SOURCE_DIR}/deploy/debian/prerm
    ${PROJECT_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
