# md5sum of a file, read as it is (a .gz stays compressed), as upstream's md5 example (WDL draft-2).
workflow md5 {
  call md5_step
}

task md5_step {
  File gzfile
  command {
    md5sum < ${gzfile} > report
  }
  output {
    File report = "report"
  }
  runtime {
    docker: "ubuntu:20.04"
  }
}
