version 1.0
# paste more than two files, concatenate fewer: only one of the two outputs exists after a run
# (upstream's cond_merge example; a job maps either with alt_cond_output_argnames).

workflow cond_merge {
  input {
    Array[File] smallfiles
  }
  if (length(smallfiles) > 2) {
    call paste { input: files = smallfiles }
  }
  if (length(smallfiles) <= 2) {
    call cat { input: files = smallfiles }
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
}
