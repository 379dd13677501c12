version 1.0
# merge a 2-deep array of files: paste each inner list, then concatenate the results.

workflow merge {
  input {
    Array[Array[File]] smallfiles
  }
  scatter (files in smallfiles) {
    call paste { input: files = files }
  }
  call cat { input: files = paste.pasted }
  output {
    File merged = cat.concatenated
  }
}

task paste {
  input {
    Array[File] files
  }
  command <<<
    paste ~{sep=" " files} > pasted
  >>>
  output {
    File pasted = "pasted"
  }
  runtime {
    docker: "ubuntu:20.04"
  }
}

task cat {
  input {
    Array[File] files
  }
  command <<<
    cat ~{sep=" " files} > concatenated
  >>>
  output {
    File concatenated = "concatenated"
  }
  runtime {
    docker: "ubuntu:20.04"
  }
}
